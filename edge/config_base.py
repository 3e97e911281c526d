"""What every section of the bus configuration shares (edge/config.py and its device modules).

Its own module so that edge/config.py, edge/config_modbus.py and edge/config_imaging.py can
all use it (edge/config.py imports the other two).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: a serial number as on a device's label: letters, digits, '.', '_' and '-' (it names a
#: folder on disk)
ID_SERIAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Strict(BaseModel):
    """A configuration section: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
