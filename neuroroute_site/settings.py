"""NeuroRoute settings: one module, read from the environment.

Development needs no configuration at all (SQLite in db_data/, local-memory
cache, eager Celery, generated local secrets). Production
(NEUROROUTE_ENV=production) refuses to start unless the secrets and hosts
are given explicitly.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from neuroroute_site.env import envbool, envfloat, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("NEUROROUTE_DATA_DIR", str(BASE_DIR / "db_data")))
LOG_DIR = Path(envstr("NEUROROUTE_LOG_DIR", str(BASE_DIR / "logs")))

ENVIRONMENT = envstr("NEUROROUTE_ENV", "development")
if ENVIRONMENT not in {"development", "production", "test"}:
    raise ImproperlyConfigured(
        f"NEUROROUTE_ENV must be development, production or test, got {ENVIRONMENT!r}"
    )
PRODUCTION = ENVIRONMENT == "production"
DEBUG = envbool("DEBUG", False)


def _development_secrets() -> dict[str, str]:
    """Secrets for a local checkout, generated once into db_data/ (never the repo).

    They must be stable across restarts, or keys stored by the admin would
    stop decrypting after every `make run`.
    """
    from cryptography.fernet import Fernet

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


SECRET_KEY = envstr("SECRET_KEY")
_field_keys = envlist("FIELD_ENCRYPTION_KEY")
if PRODUCTION:
    missing = [
        name
        for name, value in (("SECRET_KEY", SECRET_KEY), ("FIELD_ENCRYPTION_KEY", _field_keys))
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(f"Production requires {', '.join(missing)} in the environment")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production")
elif not SECRET_KEY or not _field_keys:
    _dev = _development_secrets()
    SECRET_KEY = SECRET_KEY or _dev["SECRET_KEY"]
    _field_keys = _field_keys or [_dev["FIELD_ENCRYPTION_KEY"]]
# A list lets operators rotate: the first key encrypts, all of them decrypt.
FIELD_ENCRYPTION_KEY = _field_keys if len(_field_keys) > 1 else _field_keys[0]

ALLOWED_HOSTS = envlist(
    "ALLOWED_HOSTS",
    [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"],
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Production requires ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "encrypted_model_fields",
    "providers",
    "keys",
    "routing",
]

# Every middleware here is async-capable, so async views run without a
# thread hop per request.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "neuroroute_site.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "neuroroute_site.wsgi.application"
ASGI_APPLICATION = "neuroroute_site.asgi.application"

DATABASE_URL = envstr("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI each thread would otherwise hold its own persistent
        # connection; a pool bounds and reuses them.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": envint("DATABASE_POOL_SIZE", 8, minimum=1),
            "timeout": 10,
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "neuroroute.sqlite3",
            "OPTIONS": {
                # WAL lets readers proceed while the request-log writer commits;
                # IMMEDIATE avoids "database is locked" on lock upgrades.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so live-server threads share it; per process so
            # concurrent runs on one checkout don't trample each other.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL")
# A dead Redis must fail fast (milliseconds), never hang a request.
REDIS_SOCKET_TIMEOUT = envfloat("REDIS_SOCKET_TIMEOUT", 0.25, minimum=0.001)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nr",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "neuroroute",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "admin:login"
# Server-side, so a token shown once by the admin never travels in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "keys.authentication.ClientTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["keys.permissions.IsClient"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "neuroroute_site.errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "NeuroRoute API",
    "DESCRIPTION": "LLM routing gateway: one API in front of local, OpenAI and Anthropic models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "neuroroute_site.openapi.add_gateway_paths",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1 is JSON Schema proper, which the pydantic-described gateway endpoints use.
    "OAS_VERSION": "3.1.0",
}

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "memory://")
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND") or None
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 10 * 60
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False

# Gateway behaviour.
NEUROROUTE = {
    "DEFAULT_MODEL": envstr("NEUROROUTE_DEFAULT_MODEL", "local"),
    "MAX_PROMPT_CHARS": envint("NEUROROUTE_MAX_PROMPT_CHARS", 400_000, minimum=1),
    "MAX_BODY_BYTES": envint("NEUROROUTE_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
    "RESPONSE_CACHE_TTL": envint("NEUROROUTE_CACHE_TTL", 300, minimum=0),
    "REQUEST_DEADLINE": envfloat("NEUROROUTE_REQUEST_DEADLINE", 120.0, minimum=0.1),
    "CONFIG_REFRESH_SECONDS": envfloat("NEUROROUTE_CONFIG_REFRESH", 2.0, minimum=0.0),
    "LOG_FLUSH_INTERVAL": envfloat("NEUROROUTE_LOG_FLUSH_INTERVAL", 0.2, minimum=0.0),
    "LMSTUDIO_BASE_URL": envstr("LMSTUDIO_BASE_URL", "http://localhost:1234/v1"),
    "OPENAI_BASE_URL": envstr("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "ANTHROPIC_BASE_URL": envstr("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    # Set by `make run` (and the tests) when the bundled fake upstream stands in
    # for every provider; nothing in the database changes.
    "FAKE_UPSTREAM_URL": envstr("NEUROROUTE_FAKE_UPSTREAM_URL"),
    "SERVE_STATIC": envbool("NEUROROUTE_SERVE_STATIC", True),
    "PIPELINE": envlist("NEUROROUTE_PIPELINE", ["explicit", "rules", "classifier", "requirements", "priority"]),
    # Below this model score the router prefers the default model and says so.
    "CONFIDENCE_THRESHOLD": envfloat("NEUROROUTE_CONFIDENCE_THRESHOLD", 0.35, minimum=0.0),
    "LONG_DOCUMENT_TOKENS": envint("NEUROROUTE_LONG_DOCUMENT_TOKENS", 3000, minimum=1),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = NEUROROUTE["MAX_BODY_BYTES"]

LOG_LEVEL = envstr("LOG_LEVEL", "INFO")
_log_handlers = ["stdout"]
LOGGING: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "neuroroute_site.logging.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": _log_handlers, "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
if envbool("NEUROROUTE_LOG_TO_FILE", ENVIRONMENT != "test"):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    LOGGING["handlers"]["file"] = {
        "class": "logging.handlers.WatchedFileHandler",
        "filename": str(LOG_DIR / "neuroroute.jsonl"),
        "formatter": "json",
    }
    _log_handlers.append("file")
