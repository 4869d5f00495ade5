"""Settings for the test suite: the project settings with faster hashing and loopback providers."""

from cortex.settings import *  # noqa: F403
from cortex.settings import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Loopback servers speaking provider protocols stand in for the real providers in tests.
PROVIDER_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
TESTING = True
REST_FRAMEWORK = {**REST_FRAMEWORK}
