"""Config of the imaging devices: ``kind = "retinograph"`` (docs/retinography.md).

Part of the gateway's TOML config (edge/config.py), validated by pydantic like the rest (unknown
keys are errors, and each error names its key path). A retinograph is not read by the gateway:
it sends its DICOM Ophthalmic Photography objects to the gateway's C-STORE SCP (PS3.4 Annex B)
or writes them to an export folder the gateway watches; the station it belongs to comes from
``[stations]`` as for every measuring device.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from edge.config_base import ID_SERIAL as _ID_SERIAL
from edge.config_base import Strict as _Strict

#: an AE title (PS3.5 Table 6.2-1, VR AE): 1-16 characters of the default repertoire, no
#: backslash, no control characters; leading and trailing spaces are not significant
_AE_TITLE = r"^[ -\[\]-~]{1,16}$"


AeTitle = Annotated[str, Field(pattern=_AE_TITLE)]


class RetinographDevice(_Strict):
    """A non-mydriatic retinograph sending DICOM OP 8-bit photographs (drivers/dicom)."""

    kind: Literal["retinograph"]
    #: the gateway's own AE title, as configured in the camera's DICOM destination
    ae_title: AeTitle
    #: the SCP's TCP port (11112 is the registered DICOM port, PS3.8 Annex G)
    port: Annotated[int, Field(ge=1, le=65535)] = 11112
    #: the address the SCP binds; loopback unless the camera is on the bus LAN
    bind: str = "127.0.0.1"
    #: calling AE titles accepted (A-ASSOCIATE-RJ for any other); never empty
    allowed_calling_aes: Annotated[list[AeTitle], Field(min_length=1)]
    #: an export folder the camera writes ``*.dcm`` files to, watched besides the SCP
    folder: Path | None = None
    #: the size of the outbox chunks a photograph is cut into (edge/publish/objects.py)
    chunk_size: Annotated[int, Field(ge=1024, le=16 << 20)] = 256 * 1024
    #: seconds a C-STORE waits for the gateway's verdict before answering 0xA700
    verdict_timeout_s: Annotated[float, Field(gt=0, le=120)] = 20.0
    #: the camera's serial number, as on its label (informative)
    serial_number: Annotated[str, Field(pattern=_ID_SERIAL)] | None = None

    @field_validator("bind")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"an IP address is needed, got {value!r}") from exc
        return value

    @field_validator("folder")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"the export folder must be an absolute path, got {str(value)!r}")
        return value

    @field_validator("ae_title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an AE title cannot be only spaces")
        return value
