<?php
// php wp_setup.php WP_DIR PORT STEP ...  (RC_PORT=PORT in the environment)
//   install                      WordPress itself, pretty permalinks
//   plugins PLUGIN...            activate WooCommerce and the tracking plugin (their own installers run)
//   seed CK CS ORDERS            an API key (read/write, user 1), a product and ORDERS processing orders;
//                                prints the order ids, one per line
$rc_dir = $argv[1];
$_SERVER['HTTP_HOST'] = '127.0.0.1:' . $argv[2];
$_SERVER['SERVER_PORT'] = $argv[2];
$_SERVER['REQUEST_URI'] = '/';
$rc_step = $argv[3];
if ($rc_step === 'install') {
    define('WP_INSTALLING', true);
}
require $rc_dir . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
if ($rc_step === 'install') {
    wp_install('statusctl real-cart shop', 'admin', 'admin@example.test', true, '', 'admin-password-1');
    update_option('permalink_structure', '/%postname%/');
} elseif ($rc_step === 'plugins') {
    foreach (array_slice($argv, 4) as $rc_plugin) {
        $rc_result = activate_plugin($rc_plugin);
        if (is_wp_error($rc_result)) {
            fwrite(STDERR, $rc_plugin . ': ' . $rc_result->get_error_message() . "\n");
            exit(1);
        }
    }
} elseif ($rc_step === 'seed') {
    global $wpdb;
    add_filter('pre_wp_mail', '__return_false');  // the shop's own order e-mails of the set-up are not the tests'

    $wpdb->insert($wpdb->prefix . 'woocommerce_api_keys', array(
        'user_id' => 1, 'description' => 'statusctl', 'permissions' => 'read_write',
        'consumer_key' => wc_api_hash($argv[4]), 'consumer_secret' => $argv[5],
        'truncated_key' => substr($argv[4], -7)));
    $rc_product = new WC_Product_Simple();
    $rc_product->set_name('Mug');
    $rc_product->set_sku('MUG-1');
    $rc_product->set_regular_price('10');
    $rc_product->save();
    for ($rc_n = 0; $rc_n < (int)$argv[6]; $rc_n++) {
        $rc_order = wc_create_order();
        $rc_order->add_product($rc_product, 2);
        $rc_order->set_billing_first_name('Jo');
        $rc_order->set_billing_last_name('Doe');
        $rc_order->set_billing_email("jo$rc_n@example.test");
        $rc_order->calculate_totals();
        $rc_order->set_status('processing');
        $rc_order->save();
        echo $rc_order->get_id(), "\n";
    }
}
