<?php
// Helpers of the Notes configuration script and front page: settings from the APS environment,
// the PDO connection for the chosen database type, and the notes table.

function notes_env(string $name): string
{
    $value = getenv($name);
    if ($value === false) {
        fwrite(STDERR, "The variable $name is not set.\n");
        exit(3);
    }
    return $value;
}

/** The database of db:id `main` as apsctl describes it in DB_main_*. */
function notes_db_from_env(): array
{
    $prefix = getenv('DB_main_PREFIX');
    $db = [
        'type' => notes_env('DB_main_TYPE'),
        'name' => notes_env('DB_main_NAME'),
        'host' => notes_env('DB_main_HOST'),
        'port' => notes_env('DB_main_PORT'),
        'login' => notes_env('DB_main_LOGIN'),
        'password' => notes_env('DB_main_PASSWORD'),
        'prefix' => $prefix === false ? '' : $prefix,
    ];
    if (!preg_match('/^[A-Za-z0-9_]*$/', $db['prefix'])) {
        fwrite(STDERR, "The table prefix `{$db['prefix']}` may hold only letters, digits and `_`.\n");
        exit(2);
    }
    $db['dsn'] = notes_dsn($db);
    return $db;
}

/** The PDO DSN; for SQLite, DB_main_NAME is the database file's path. */
function notes_dsn(array $db): string
{
    $hostPort = 'host=' . $db['host'] . ($db['port'] === '' ? '' : ';port=' . $db['port']);
    switch ($db['type']) {
        case 'mysql':
            return "mysql:$hostPort;dbname={$db['name']};charset=utf8mb4";
        case 'postgresql':
            return "pgsql:$hostPort;dbname={$db['name']}";
        case 'sqlite':
            return 'sqlite:' . $db['name'];
        default:
            fwrite(STDERR, "Database type `{$db['type']}` is not supported.\n");
            exit(2);
    }
}

function notes_connect(array $db): PDO
{
    $pdo = new PDO(
        $db['dsn'],
        $db['login'] === '' ? null : $db['login'],
        $db['password'] === '' ? null : $db['password'],
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]
    );
    if ($db['type'] === 'postgresql') {
        $pdo->exec("SET client_encoding TO 'UTF8'");
    }
    return $pdo;
}

/** The quoted name of the notes table (with the instance's table prefix). */
function notes_table(array $db): string
{
    $name = $db['prefix'] . 'notes';
    return $db['type'] === 'mysql' ? "`$name`" : "\"$name\"";
}

function notes_create_table(PDO $pdo, array $db): void
{
    $table = notes_table($db);
    switch ($db['type']) {
        case 'mysql':
            $sql = "CREATE TABLE $table (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL, "
                . "data BLOB) DEFAULT CHARSET=utf8mb4";
            break;
        case 'postgresql':
            $sql = "CREATE TABLE $table (id SERIAL PRIMARY KEY, body TEXT NOT NULL, data BYTEA)";
            break;
        default:
            $sql = "CREATE TABLE $table (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, "
                . "data BLOB)";
    }
    $pdo->exec($sql);
}

function notes_add(PDO $pdo, array $db, string $body, string $data): void
{
    $insert = $pdo->prepare('INSERT INTO ' . notes_table($db) . ' (body, data) VALUES (?, ?)');
    $insert->bindValue(1, $body, PDO::PARAM_STR);
    $insert->bindValue(2, $data, PDO::PARAM_LOB);
    $insert->execute();
}

function notes_write_config(string $path, array $db, string $title): void
{
    $cfg = $db + ['title' => $title];
    $tmp = $path . '.tmp';
    // The file holds the database password: readable by the site's user (and group) only.
    $old = umask(0027);
    $ok = file_put_contents($tmp, "<?php\nreturn " . var_export($cfg, true) . ";\n") !== false
        && rename($tmp, $path);
    umask($old);
    if (!$ok) {
        fwrite(STDERR, "Cannot write $path.\n");
        exit(4);
    }
}
