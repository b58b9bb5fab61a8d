"""Connection info is encrypted with the first key, readable with any, and rotatable."""

import pytest
from cryptography.fernet import Fernet

from api.tenancy.crypto import ConnectionCipher

INFO = {"host": "db1", "port": 3306, "user": "t_acme", "password": "s3cret", "database": "x"}


def test_round_trip_never_shows_the_password():
    cipher = ConnectionCipher([Fernet.generate_key()])
    token = cipher.encrypt(INFO)
    assert "s3cret" not in token and "t_acme" not in token
    assert cipher.decrypt(token) == INFO


def test_rotation_re_encrypts_under_the_first_key():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = ConnectionCipher([old]).encrypt(INFO)
    both = ConnectionCipher([new, old])
    assert both.decrypt(token) == INFO
    rotated = both.rotate(token)
    assert ConnectionCipher([new]).decrypt(rotated) == INFO
    with pytest.raises(ValueError, match="cannot be decrypted"):
        ConnectionCipher([new]).decrypt(token)
