<?php
// One request of a PHP application using the session handler configured
// with -d options (session.save_handler, session.save_path, ...).
// Usage: php session.php ACTION [SESSION_ID]
//   create      start a new session holding n=0, user=alice; print its id
//   read        print the session's data as JSON
//   incr        read n, wait, write n+1 (a request that holds the session lock)
//   regenerate  session_regenerate_id(true); print the new id
//   destroy     session_destroy()
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.serialize_handler', 'php_serialize');
$action = $argv[1];
if (isset($argv[2])) {
    session_id($argv[2]);
}
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}
switch ($action) {
case 'create':
    $_SESSION['n'] = 0;
    $_SESSION['user'] = 'alice';
    echo session_id(), "\n";
    break;
case 'read':
    echo json_encode($_SESSION), "\n";
    break;
case 'incr':
    $n = $_SESSION['n'];
    usleep(30000);
    $_SESSION['n'] = $n + 1;
    break;
case 'regenerate':
    session_regenerate_id(true);
    echo session_id(), "\n";
    break;
case 'destroy':
    session_destroy();
    exit(0);
default:
    fwrite(STDERR, "unknown action $action\n");
    exit(2);
}
if (!session_write_close()) {
    fwrite(STDERR, "session_write_close failed\n");
    exit(1);
}
