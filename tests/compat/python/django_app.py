"""The Django settings of django_session.py and django_cache.py: the cache
is django-redis (Debian python3-django-redis) at HATCHECK_ADDR (password
HATCHECK_PASSWORD), sessions live in that cache
(SESSION_ENGINE = "django.contrib.sessions.backends.cache") for
SESSION_TTL seconds, and cache keys start with KEY_PREFIX (Django's
default: none)."""
import os

import django
from django.conf import settings


def setup():
    settings.configure(
        SECRET_KEY="hatcheck-compat",
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": "redis://%s/0" % os.environ["HATCHECK_ADDR"],
                "KEY_PREFIX": os.environ.get("KEY_PREFIX", ""),
                "OPTIONS": {"PASSWORD": os.environ.get("HATCHECK_PASSWORD") or None},
            }
        },
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        SESSION_COOKIE_AGE=int(os.environ.get("SESSION_TTL", "1440")),
        INSTALLED_APPS=["django.contrib.sessions"],
    )
    django.setup()
