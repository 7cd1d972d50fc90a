<?php
// Front page of the Hello APS example package.
$config = __DIR__ . '/config.php';
if (!is_file($config)) {
    http_response_code(503);
    echo "Hello APS is not configured.\n";
    exit(1);
}
$cfg = require $config;
$greeting = $cfg['greeting'] === 'welcome' ? 'Welcome' : 'Hello';
$visits = 0;
$counter = __DIR__ . '/data/visits.txt';
if (is_file($counter)) {
    $visits = (int) file_get_contents($counter);
}
@file_put_contents($counter, (string) ($visits + 1));
echo '<h1>' . htmlspecialchars($cfg['title']) . "</h1>\n";
echo '<p>' . $greeting . ', I was installed at ' . htmlspecialchars($cfg['base_url']) . ".</p>\n";
if ($cfg['show_time']) {
    echo '<p>Server time: ' . date('c') . "</p>\n";
}
