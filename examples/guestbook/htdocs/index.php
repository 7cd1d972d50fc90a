<?php
// Front page of the Guestbook example package: the title and the newest entries.
require __DIR__ . '/common.php';

$cfg = gb_config();
$pdo = gb_db($cfg);
$perPage = max(1, (int) $cfg['entries_per_page']);
$page = max(1, (int) ($_GET['page'] ?? 1));
$stmt = $pdo->prepare('SELECT id, created_at, message, attachment FROM ' . gb_table($cfg)
    . ' ORDER BY id DESC LIMIT ' . $perPage . ' OFFSET ' . (($page - 1) * $perPage));
$stmt->execute();

echo '<!doctype html>' . "\n" . '<title>' . gb_h($cfg['title']) . "</title>\n";
echo '<h1>' . gb_h($cfg['title']) . "</h1>\n";
foreach ($stmt as $row) {
    echo '<p class="entry">' . gb_h($row['message']);
    if ($row['attachment'] !== null) {
        echo ' <a href="uploads/' . rawurlencode($row['attachment']) . '">' . gb_h($row['attachment']) . '</a>';
    }
    echo ' <small>' . gb_h($row['created_at']) . "</small></p>\n";
}
echo '<form method="post" action="add.php" enctype="multipart/form-data">'
    . '<textarea name="message" required></textarea> <input type="file" name="attachment">'
    . ' <button>Sign the guestbook</button></form>' . "\n";
