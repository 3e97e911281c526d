"""Client TLS for the MQTT link: TLS 1.2 minimum, CA and host name always verified.

The certificate files are read at each connection attempt, so a rotated certificate is picked
up on the next one; a missing or unreadable file is named in the error.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any


class TrackingContext(ssl.SSLContext):
    """Remembers the sockets it wrapped, to close them after a failed attempt.

    paho drops (without closing) a socket whose TLS handshake failed, which would leak a file
    descriptor per failed attempt until garbage collection.
    """

    opened: list[ssl.SSLSocket]

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        if not hasattr(self, "opened"):
            self.opened = []
        self.opened.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in getattr(self, "opened", []):
            sock.close()
        self.opened = []


def tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> TrackingContext:
    """Client TLS: TLS 1.2+ (1.3 preferred by OpenSSL), CA and host name verified."""
    check_readable(
        {"mqtt.ca_file": ca_file, "mqtt.cert_file": cert_file, "mqtt.key_file": key_file}
    )
    try:
        ctx = TrackingContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca_file is not None:
            ctx.load_verify_locations(cafile=str(ca_file))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cert_file is not None and key_file is not None:
            ctx.load_cert_chain(str(cert_file), str(key_file))
    except ssl.SSLError as exc:
        raise ValueError(f"TLS files unusable (ca={ca_file}, cert={cert_file}): {exc}") from exc
    return ctx


def check_readable(files: dict[str, Path | None]) -> None:
    """Name the faulty file: paho's own error is a bare ``[Errno 2] No such file``."""
    for key, path in files.items():
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ValueError(f"{key} = {str(path)!r} cannot be read: {exc.strerror}") from exc
