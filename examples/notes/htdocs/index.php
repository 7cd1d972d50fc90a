<?php
// Front page of the Notes example package: lists the notes and the database type in use.
$config = __DIR__ . '/config.php';
if (!is_file($config)) {
    http_response_code(503);
    echo "Notes is not configured.\n";
    exit(1);
}
$cfg = require $config;
$pdo = new PDO(
    $cfg['dsn'],
    $cfg['login'] === '' ? null : $cfg['login'],
    $cfg['password'] === '' ? null : $cfg['password'],
    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]
);
$table = $cfg['prefix'] . 'notes';
$table = $cfg['type'] === 'mysql' ? "`$table`" : "\"$table\"";
echo '<h1>' . htmlspecialchars($cfg['title']) . "</h1>\n";
echo '<p>Database type: ' . htmlspecialchars($cfg['type']) . "</p>\n<ul>\n";
foreach ($pdo->query("SELECT body, data FROM $table ORDER BY id") as $row) {
    $data = is_resource($row['data']) ? stream_get_contents($row['data']) : (string) $row['data'];
    echo '<li>' . htmlspecialchars($row['body']) . ' <code>' . bin2hex($data) . "</code></li>\n";
}
echo "</ul>\n";
