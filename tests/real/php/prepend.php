<?php
// auto_prepend_file of the real carts' PHP servers (tests only): logs every request to
// $RC_CTL/calls.log and can hold one request open so that a test can kill statusctl mid-send.
// A test writes a URI fragment to $RC_CTL/hold; the next request whose "METHOD URI" contains it
// touches $RC_CTL/held and waits for $RC_CTL/release: "go" lets the cart handle it
// ($RC_CTL/done appears when it has), "drop" ends it with HTTP 500 before the cart saw it.
$rc_ctl = getenv('RC_CTL');
if ($rc_ctl && !defined('RC_PREPENDED')) {
    define('RC_PREPENDED', true);
    $rc_call = $_SERVER['REQUEST_METHOD'] . ' ' . urldecode($_SERVER['REQUEST_URI']);
    file_put_contents("$rc_ctl/calls.log", $rc_call . "\n", FILE_APPEND | LOCK_EX);
    $rc_hold = @file_get_contents("$rc_ctl/hold");
    if ($rc_hold !== false && trim($rc_hold) !== '' && strpos($rc_call, trim($rc_hold)) !== false) {
        @unlink("$rc_ctl/hold");
        touch("$rc_ctl/held");
        $rc_until = time() + 60;
        while (!file_exists("$rc_ctl/release") && time() < $rc_until) {
            usleep(20000);
        }
        $rc_mode = trim((string)@file_get_contents("$rc_ctl/release"));
        @unlink("$rc_ctl/release");
        if ($rc_mode === 'drop') {
            http_response_code(500);
            exit;
        }
        register_shutdown_function(function () use ($rc_ctl) { touch("$rc_ctl/done"); });
    }
}
