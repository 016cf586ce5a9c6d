<?php
// php -S router for WordPress (tests only): real files as they are, everything else to index.php
// (pretty permalinks, so that /wp-json/ reaches the REST API). PHP's built-in server runs no
// auto_prepend_file before a router, so the router runs the test hook itself.
if (ini_get('auto_prepend_file')) {
    require_once ini_get('auto_prepend_file');
}
$rc_path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$rc_file = $_SERVER['DOCUMENT_ROOT'] . $rc_path;
if ($rc_path !== '/' && is_file($rc_file)) {
    if (substr($rc_file, -4) !== '.php') {
        return false;
    }
    $_SERVER['SCRIPT_NAME'] = $rc_path;
    $_SERVER['SCRIPT_FILENAME'] = $rc_file;
    chdir(dirname($rc_file));
    require $rc_file;
    return true;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/index.php';
require $_SERVER['DOCUMENT_ROOT'] . '/index.php';
