"""Python clients over TLS: redis-py with ssl=True and pymemcache with a TLS
context, each verifying the server against the CA.

Usage: tls_clients.py redis|memcache HOST PORT CA_FILE [CERT_FILE KEY_FILE]

Sets the key "py-<protocol>" to "over tls", reads it back and prints it;
CERT_FILE and KEY_FILE are presented as the client's certificate.
"""
import ssl
import sys

kind, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cert, key = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
name = "py-" + kind

if kind == "redis":
    import redis

    r = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=ca,
                    ssl_certfile=cert, ssl_keyfile=key, socket_timeout=10)
    r.set(name, "over tls", ex=60)
    print(r.get(name).decode())
elif kind == "memcache":
    from pymemcache.client.base import Client

    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    c = Client((host, port), tls_context=ctx, timeout=10)
    c.set(name, b"over tls", expire=60)
    print(c.get(name).decode())
else:
    sys.exit("unknown client " + kind)
