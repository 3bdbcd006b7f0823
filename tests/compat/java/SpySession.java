// One request of a Java web application keeping its sessions in memcached
// through spymemcached (Debian libspymemcached-java), the way
// memcached-session-manager does: the session under its id, a lock taken
// with add("lock:<id>") for the length of the request, backup-free.
//
// Usage: java -cp spymemcached.jar:. SpySession ACTION [ID]
// with HATCHECK_ADDR=host:port, SESSION_TTL seconds, HATCHECK_PROTOCOL
// binary or text. Actions as in ../php/session.php.
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import net.spy.memcached.AddrUtil;
import net.spy.memcached.ConnectionFactoryBuilder;
import net.spy.memcached.MemcachedClient;

public class SpySession {
    public static void main(String[] args) throws Exception {
        // Quiet: spymemcached logs every connection at INFO on stderr.
        System.setProperty("net.spy.log.LoggerImpl", "net.spy.memcached.compat.log.SunLogger");
        java.util.logging.Logger.getLogger("net.spy.memcached").setLevel(java.util.logging.Level.SEVERE);
        String action = args[0];
        String id = args.length > 1 ? args[1] : null;
        int ttl = Integer.parseInt(System.getenv().getOrDefault("SESSION_TTL", "1440"));
        ConnectionFactoryBuilder.Protocol proto = "text".equals(System.getenv("HATCHECK_PROTOCOL"))
            ? ConnectionFactoryBuilder.Protocol.TEXT : ConnectionFactoryBuilder.Protocol.BINARY;
        MemcachedClient mc = new MemcachedClient(
            new ConnectionFactoryBuilder().setProtocol(proto).setOpTimeout(10000).build(),
            AddrUtil.getAddresses(System.getenv("HATCHECK_ADDR")));
        try {
            run(mc, action, id, ttl);
        } finally {
            mc.shutdown(5, TimeUnit.SECONDS);
        }
    }

    static void run(MemcachedClient mc, String action, String id, int ttl) throws Exception {
        switch (action) {
        case "create": {
            String sid = UUID.randomUUID().toString().replace("-", "");
            check(mc.set(sid, ttl, "{\"n\":0,\"user\":\"alice\"}").get(), "set");
            System.out.println(sid);
            return;
        }
        case "read": {
            Object v = mc.get(id);
            System.out.println(v == null ? "[]" : v);
            return;
        }
        case "incr": {
            lock(mc, id);
            try {
                String v = (String) mc.get(id);
                int n = Integer.parseInt(v.replaceAll(".*\"n\":(\\d+).*", "$1"));
                Thread.sleep(30);
                check(mc.set(id, ttl, v.replaceFirst("\"n\":\\d+", "\"n\":" + (n + 1))).get(), "set");
            } finally {
                mc.delete("lock:" + id).get();
            }
            return;
        }
        case "regenerate": {
            String sid = UUID.randomUUID().toString().replace("-", "");
            check(mc.set(sid, ttl, mc.get(id)).get(), "set");
            mc.delete(id).get();
            System.out.println(sid);
            return;
        }
        case "destroy":
            mc.delete(id).get();
            return;
        default:
            throw new IllegalArgumentException("unknown action " + action);
        }
    }

    // lock waits for add("lock:<id>") to succeed, as the session manager does.
    static void lock(MemcachedClient mc, String id) throws Exception {
        for (int i = 0; i < 1000; i++) {
            if (mc.add("lock:" + id, 30, "locked").get()) {
                return;
            }
            Thread.sleep(10);
        }
        throw new IllegalStateException("lock not acquired");
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException(what + " failed");
        }
    }
}
