<?php
// Shared code of the Guestbook pages: configuration and database access.

function gb_config(): array
{
    $path = __DIR__ . '/config.php';
    if (!is_file($path)) {
        if (PHP_SAPI !== 'cli') {
            http_response_code(503);
        }
        echo "The guestbook is not configured.\n";
        exit(1);
    }
    return require $path;
}

function gb_db(array $cfg): PDO
{
    $db = $cfg['db'];
    $dsn = 'mysql:host=' . $db['host'] . ($db['port'] === '' ? '' : ';port=' . $db['port'])
        . ';dbname=' . $db['name'] . ';charset=utf8mb4';
    return new PDO($dsn, $db['user'], $db['password'], [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

function gb_table(array $cfg): string
{
    return '`' . $cfg['db']['prefix'] . 'entries`';
}

function gb_h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES, 'UTF-8');
}
