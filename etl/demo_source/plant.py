"""The clean demo plant: master data and the operational history up to the plant's clock.

Everything here obeys the clean-baseline rules (contemporaneous, verified, trained, calibrated,
approved suppliers, timely notifications, CAPAs on time); `anomalies.py` then breaks chosen
records on purpose. Rows are dicts keyed by contract column names; keys starting with "_"
carry generation state and are never written.

`Plant` joins one mixin per domain, each built on `PlantBase` (base.py: the preset, the seeded
random stream, the clock, the rows and the helpers that add them):

- master_data.py: site, sponsors and quality agreements, operators, products and trains, SOPs
  and training, suppliers and bills of materials, equipment and its history;
- batches.py: the trains' schedule, QC and decision timelines, batch status, equipment usage,
  material lots and consumption, test results;
- quality_events.py: deviations, CAPAs, complaints, product reviews, self-inspections;
- change_controls.py: change controls, their sponsor impacts and markets;
- tech_transfer.py: technology transfer projects and master batch records.

Every domain draws from the one random stream, so the order in which `generate` (__init__.py)
calls them, between the steps of stories.py and anomalies.py, is part of what is generated.
"""

from __future__ import annotations

from etl.demo_source.base import DAY, days, hours
from etl.demo_source.batches import MFG_DAYS, Batches, Pin
from etl.demo_source.change_controls import ChangeControls
from etl.demo_source.master_data import MasterData
from etl.demo_source.quality_events import QualityEvents
from etl.demo_source.tech_transfer import TechTransfer

# What stories.py and anomalies.py import from here.
__all__ = ["DAY", "MFG_DAYS", "Pin", "Plant", "days", "hours"]


class Plant(MasterData, Batches, QualityEvents, ChangeControls, TechTransfer):
    """Builds every table's rows for one preset, seed and clock."""
