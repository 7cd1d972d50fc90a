<?php
// Helpers of the Guestbook configuration script.

/** A failure with a message for the administrator. */
class GuestbookError extends Exception
{
}

/** The value of an APS variable; a missing variable is an error. */
function gb_env(string $name): string
{
    $value = getenv($name);
    if ($value === false) {
        throw new GuestbookError("the variable $name is not set");
    }
    return $value;
}

/** The table prefix (`DB_main_PREFIX` is exported only when the instance was given one). */
function gb_prefix(): string
{
    $prefix = getenv('DB_main_PREFIX');
    if ($prefix === false) {
        return '';
    }
    if (!preg_match('/^[A-Za-z0-9_]*$/', $prefix)) {
        throw new GuestbookError("the table prefix `$prefix` may hold only letters, digits and `_`");
    }
    return $prefix;
}

/** The database connection settings from the environment. */
function gb_db_settings(): array
{
    return [
        'host' => gb_env('DB_main_HOST'),
        'port' => gb_env('DB_main_PORT'),
        'name' => gb_env('DB_main_NAME'),
        'user' => gb_env('DB_main_LOGIN'),
        'password' => gb_env('DB_main_PASSWORD'),
        'prefix' => gb_prefix(),
    ];
}

/** Opens the instance's database. */
function gb_connect(array $db): PDO
{
    $dsn = 'mysql:host=' . $db['host'] . ($db['port'] === '' ? '' : ';port=' . $db['port'])
        . ';dbname=' . $db['name'] . ';charset=utf8mb4';
    return new PDO($dsn, $db['user'], $db['password'], [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

/** The path of the application's configuration file. */
function gb_config_path(): string
{
    return gb_env('WEB___DIR') . '/config.php';
}

/** `install`: the entries table, the welcome entry and the configuration file. */
function gb_install(): void
{
    $password = gb_env('SETTINGS_admin_password');
    if (strlen($password) < 8) {
        throw new GuestbookError('the administrator password must have at least 8 characters');
    }
    $db = gb_db_settings();
    $pdo = gb_connect($db);
    $table = $db['prefix'] . 'entries';
    $pdo->exec("CREATE TABLE `$table` (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        created_at DATETIME NOT NULL,
        message TEXT NOT NULL,
        attachment VARCHAR(255) NULL
    ) DEFAULT CHARSET=utf8mb4");
    $insert = $pdo->prepare("INSERT INTO `$table` (created_at, message) VALUES (NOW(), ?)");
    $insert->execute(['Welcome to ' . gb_env('SETTINGS_title') . '! This is the first entry of your guestbook.']);
    gb_write_config(password_hash($password, PASSWORD_DEFAULT));
}

/** The administrator's password hash kept in the current configuration file, if any. */
function gb_existing_admin_hash(): string
{
    $path = gb_config_path();
    if (!is_file($path)) {
        fwrite(STDERR, "guestbook: $path is missing; writing a new one without an administrator password\n");
        return '';
    }
    $old = require $path;
    return is_array($old) ? (string) ($old['admin_hash'] ?? '') : '';
}

/** Writes `config.php` (readable by the site's user and group only) in one rename. */
function gb_write_config(string $adminHash): void
{
    $port = gb_env('BASE_URL_PORT');
    $cfg = [
        'title' => gb_env('SETTINGS_title'),
        'admin_email' => gb_env('SETTINGS_admin_email'),
        'admin_hash' => $adminHash,
        'entries_per_page' => (int) gb_env('SETTINGS_entries_per_page'),
        'base_url' => gb_env('BASE_URL_SCHEME') . '://' . gb_env('BASE_URL_HOST')
            . ($port === '' ? '' : ':' . $port) . gb_env('BASE_URL_PATH'),
        'uploads' => gb_env('WEB__uploads_DIR'),
        'db' => gb_db_settings(),
    ];
    $path = gb_config_path();
    $tmp = $path . '.tmp';
    $text = "<?php\n// Written by the guestbook's configuration script; rewritten on every reconfiguration.\n"
        . 'return ' . var_export($cfg, true) . ";\n";
    if (file_put_contents($tmp, $text) === false || !chmod($tmp, 0640) || !rename($tmp, $path)) {
        @unlink($tmp);
        throw new GuestbookError("cannot write $path");
    }
}

/** `remove`: drops the entries table and deletes the configuration file. */
function gb_remove(): void
{
    $db = gb_db_settings();
    $pdo = gb_connect($db);
    $pdo->exec('DROP TABLE IF EXISTS `' . $db['prefix'] . 'entries`');
    $path = gb_config_path();
    if (is_file($path) && !unlink($path)) {
        throw new GuestbookError("cannot delete $path");
    }
}
