<?php
// Helpers of the Hello APS configuration script.

function hello_env(string $name): string
{
    $value = getenv($name);
    if ($value === false) {
        fwrite(STDERR, "The variable $name is not set.\n");
        exit(3);
    }
    return $value;
}

function hello_write_config(string $path, bool $withHash): void
{
    $port = hello_env('BASE_URL_PORT');
    $url = hello_env('BASE_URL_SCHEME') . '://' . hello_env('BASE_URL_HOST')
        . ($port === '' ? '' : ':' . $port) . hello_env('BASE_URL_PATH');
    $cfg = [
        'title' => hello_env('SETTINGS_title'),
        'greeting' => hello_env('SETTINGS_greeting'),
        'show_time' => hello_env('SETTINGS_show_time') === 'true',
        'admin_name' => hello_env('SETTINGS_admin_name'),
        'base_url' => $url,
    ];
    $old = is_file($path) ? (require $path) : [];
    $cfg['admin_hash'] = $withHash
        ? password_hash(hello_env('SETTINGS_admin_password'), PASSWORD_DEFAULT)
        : ($old['admin_hash'] ?? '');
    $tmp = $path . '.tmp';
    if (file_put_contents($tmp, "<?php\nreturn " . var_export($cfg, true) . ";\n") === false
        || !rename($tmp, $path)) {
        fwrite(STDERR, "Cannot write $path.\n");
        exit(4);
    }
}
