<?php
// Adds an entry: from a form post (`message`, optional `attachment` upload), or from the command
// line as `php add.php "text" [file-to-attach]`.
require __DIR__ . '/common.php';

$cfg = gb_config();
$cli = PHP_SAPI === 'cli';
$message = trim((string) ($cli ? ($argv[1] ?? '') : ($_POST['message'] ?? '')));
if ($message === '') {
    if (!$cli) {
        http_response_code(400);
    }
    echo "An entry needs a message.\n";
    exit(2);
}

$pdo = gb_db($cfg);
$stmt = $pdo->prepare('INSERT INTO ' . gb_table($cfg) . ' (created_at, message) VALUES (NOW(), ?)');
$stmt->execute([$message]);
$id = (int) $pdo->lastInsertId();

$source = $cli ? ($argv[2] ?? null) : ($_FILES['attachment']['tmp_name'] ?? null);
$original = $cli ? ($argv[2] ?? '') : ($_FILES['attachment']['name'] ?? '');
if ($source !== null && $source !== '') {
    $name = $id . '-' . preg_replace('/[^A-Za-z0-9._-]/', '_', basename($original));
    $target = $cfg['uploads'] . '/' . $name;
    $ok = $cli ? copy($source, $target) : move_uploaded_file($source, $target);
    if (!$ok) {
        echo "The attachment could not be stored.\n";
        exit(3);
    }
    $pdo->prepare('UPDATE ' . gb_table($cfg) . ' SET attachment = ? WHERE id = ?')->execute([$name, $id]);
}

if ($cli) {
    echo "entry $id added\n";
} else {
    header('Location: index.php', true, 303);
}
