"""Size presets of the demo plant and the fictional names it is made of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    sponsors: int
    years: int
    trains_per_modality: int
    products_per_sponsor: tuple[int, ...]  # cycled over sponsors
    events_per_batch: tuple[int, int]  # inclusive range
    anomaly_scale: int  # multiplies the injected-problem counts
    tech_transfer_projects: int  # active projects on products not yet in production


PRESETS = {
    "demo": Preset("demo", 5, 3, 2, (3, 3, 3, 3, 2), (30, 60), 1, 6),
    "large": Preset("large", 50, 10, 26, (3,), (150, 250), 4, 12),
}

MODALITIES = ("OSD", "BIOLOGIC", "STERILE_FILL_FINISH")


@dataclass(frozen=True)
class Profile:
    """How one sponsor of the plant differs from the others, so that the cockpit and the demo
    tour have a story to tell: its share of the trains' work, of the deviations and of the
    injected problems, and what it makes."""

    volume: float = 1.0  # weight of its products when a train picks its next campaign
    deviations: float = 1.0  # multiplies the rate of deviations per batch
    problems: int = 1  # its turns in each round when injected problems are spread (0: none)
    pace: float = 1.0  # multiplies the days its QA takes to release a lot
    closure: float = 1.0  # multiplies the days its batches' deviations take to close
    modalities: tuple[str, ...] = ()  # its products' modalities, cycled; () = a mix
    story: str = "an ordinary sponsor"


# (id, name, country, profile): the demo plant's five sponsors and how each one is doing.
DEMO_SPONSORS = (
    ("NWT", "Northwind Therapeutics (fictional)", "US",
     Profile(deviations=0.8, pace=0.8,
             story="the sponsor of JOURNEYS.md: a mix of modalities, good performance")),
    ("CTB", "Contoso Biologics (fictional)", "DE",
     Profile(volume=1.2, deviations=2.5, problems=3, pace=1.3, closure=1.7,
             modalities=("BIOLOGIC",),
             story="struggling: biologics only, many deviations, late CAPAs and notices")),
    ("FBK", "Fabrikam Pharma (fictional)", "CH",
     Profile(volume=1.8, deviations=0.7, pace=0.7, modalities=("OSD", "OSD", "STERILE_FILL_FINISH"),
             story="the largest: mostly tablets, high volume, good performance")),
    ("TSP", "Tailspin Pharma (fictional)", "JP",
     Profile(volume=0.7, deviations=0.9, story="a smaller sponsor, average performance")),
    ("WGT", "Wingtip Health (fictional)", "GB",
     Profile(volume=0.8, deviations=0.3, problems=0, pace=0.5,
             modalities=("STERILE_FILL_FINISH",),
             story="excellent: sterile products, few deviations, no injected problem of its own")),
)  # fmt: skip
TRAIN_PREFIX = {"OSD": "OSD", "BIOLOGIC": "BIO", "STERILE_FILL_FINISH": "SFF"}
DOSAGE_FORMS = {
    "OSD": ("Film-coated tablet", "Hard capsule"),
    "BIOLOGIC": ("Concentrate for solution for infusion", "Solution for injection"),
    "STERILE_FILL_FINISH": ("Lyophilised powder for injection", "Prefilled syringe"),
}
MARKETS = ("US;EU", "US;EU;JP", "EU", "US")
PRODUCT_STEMS = (
    "Avelorin", "Brixatide", "Celvamab", "Dorzulast", "Entravir", "Fenolimab", "Glucotrex",
    "Hexavane", "Imbrutide", "Jorvastat", "Kelpramab", "Lumivane", "Mirogliptin", "Norvexa",
    "Oxelumab", "Pravinox", "Quilotide", "Rexovir", "Sotalumab", "Tervanil",
)  # fmt: skip

# Equipment of one train, in the order a batch passes through it (code, name, type in words).
TRAIN_EQUIPMENT = {
    "OSD": (
        ("GRN", "High-shear granulator", "Granulator"), ("FBD", "Fluid bed dryer", "Dryer"),
        ("BLD", "Bin blender", "Blender"), ("TBP", "Rotary tablet press", "Tablet press"),
        ("COT", "Pan coater", "Coater"),
    ),
    "BIOLOGIC": (
        ("BRX", "2000 L single-use bioreactor", "Bioreactor"),
        ("CEN", "Harvest centrifuge", "Centrifuge"),
        ("CHR", "Chromatography skid", "Chromatography"),
        ("UFD", "UF/DF skid", "Tangential flow filtration"),
    ),
    "STERILE_FILL_FINISH": (
        ("FVS", "Formulation vessel 500 L", "Vessel"), ("FIL", "Aseptic filling line", "Filler"),
        ("LYO", "Freeze dryer", "Freeze dryer"), ("CAP", "Capping machine", "Capper"),
    ),
}  # fmt: skip
SITE_EQUIPMENT = (
    ("QC-HPLC-01", "HPLC system 1", "HPLC"), ("QC-PH-01", "pH meter 1", "pH meter"),
    ("UT-WFI-01", "Water for injection loop", "Utility"),
)  # fmt: skip

# Manufacturing steps per modality (name, event type); the batch record cycles through them.
# BIOLOGIC index 4 is the pH check so that a biologic batch's step 7 is a pH entry.
STEP_TEMPLATES = {
    "OSD": (
        ("Granulation start", "STEP"), ("Granulation end-point", "IPC"),
        ("Drying", "STEP"), ("Loss on drying", "IPC"), ("Blending", "STEP"),
        ("Blend uniformity sample", "SAMPLE"), ("Compression set-up", "STEP"),
        ("Tablet weight check", "IPC"), ("Tablet hardness check", "IPC"), ("Coating", "STEP"),
        ("Coating weight gain", "IPC"), ("In-process sample", "SAMPLE"),
    ),
    "BIOLOGIC": (
        ("Media preparation", "STEP"), ("Inoculation", "STEP"), ("Temperature check", "IPC"),
        ("Feed addition", "STEP"), ("pH check", "IPC"), ("Dissolved oxygen check", "IPC"),
        ("Cell count sample", "SAMPLE"), ("Harvest", "STEP"), ("Protein A capture", "STEP"),
        ("Viral inactivation", "STEP"), ("Polishing chromatography", "STEP"),
        ("UF/DF", "STEP"), ("Bioburden sample", "SAMPLE"), ("Concentration check", "IPC"),
    ),
    "STERILE_FILL_FINISH": (
        ("Compounding", "STEP"), ("Bulk pH check", "IPC"), ("Sterile filtration", "STEP"),
        ("Filter integrity test", "IPC"), ("Filling", "STEP"), ("Fill weight check", "IPC"),
        ("Environmental monitoring sample", "SAMPLE"), ("Stoppering", "STEP"),
        ("Lyophilisation cycle", "STEP"), ("Capping", "STEP"), ("Visual inspection", "IPC"),
    ),
}  # fmt: skip
DISPENSE_STEPS = ("Dispense active ingredient", "Dispense excipients", "Dispense check weigh")

# (test name, unit, spec low, spec high) per modality; values are drawn inside the spec.
RELEASE_TESTS = {
    "OSD": (("Assay", "%", 95.0, 105.0), ("Dissolution 30 min", "%", 80.0, None),
            ("Total impurities", "%", None, 1.0), ("Water content", "%", None, 3.0)),
    "BIOLOGIC": (("Purity (SEC)", "%", 95.0, None), ("Potency", "%", 80.0, 125.0),
                 ("Endotoxin", "EU/mL", None, 0.5), ("Protein concentration", "mg/mL", 9.0, 11.0)),
    "STERILE_FILL_FINISH": (("Assay", "%", 95.0, 105.0), ("Endotoxin", "EU/mL", None, 0.25),
                            ("Subvisible particles >=10 um", "per container", None, 6000.0),
                            ("Reconstitution time", "s", None, 60.0)),
}  # fmt: skip
IPC_TESTS = {
    "OSD": (("Tablet hardness", "kp", 8.0, 14.0), ("Tablet weight", "mg", 485.0, 515.0)),
    "BIOLOGIC": (("pH", "pH", 6.8, 7.4), ("Viable cell density", "1e6 cells/mL", 5.0, 30.0)),
    "STERILE_FILL_FINISH": (("Bulk pH", "pH", 5.5, 6.5), ("Fill weight", "g", 2.95, 3.05)),
}  # fmt: skip

# Materials: name -> (modalities that use it, supplier index, quantity, unit).
MATERIALS = {
    "Microcrystalline cellulose": (("OSD",), 0, 120.0, "kg"),
    "Lactose monohydrate": (("OSD",), 1, 80.0, "kg"),
    "Magnesium stearate": (("OSD",), 2, 2.0, "kg"),
    "Film coating system": (("OSD",), 3, 12.0, "kg"),
    "Cell culture medium": (("BIOLOGIC",), 4, 1800.0, "L"),
    "Protein A resin": (("BIOLOGIC",), 5, 20.0, "L"),
    "Polysorbate 80": (("BIOLOGIC", "STERILE_FILL_FINISH"), 6, 0.5, "kg"),
    "Sucrose": (("BIOLOGIC", "STERILE_FILL_FINISH"), 1, 40.0, "kg"),
    "Type I glass vials": (("BIOLOGIC", "STERILE_FILL_FINISH"), 7, 20000.0, "units"),
    "Bromobutyl stoppers": (("BIOLOGIC", "STERILE_FILL_FINISH"), 8, 20000.0, "units"),
}  # fmt: skip
SUPPLIER_NAMES = (
    "Cellulose Works (fictional)", "Dairy Excipients (fictional)", "Lubritech (fictional)",
    "Coatex Coatings (fictional)", "Mediaform Bio (fictional)", "Affinity Resins (fictional)",
    "Surfactant Supply (fictional)", "Glassline Packaging (fictional)",
    "Elastoseal Closures (fictional)",
)  # fmt: skip
API_SUPPLIER_NAMES = (
    "Synthora API (fictional)", "Helix Biologics Supply (fictional)", "Pyrex Fine Chemicals "
    "(fictional)",
)  # fmt: skip

SITE_SOPS = (
    "Gowning and aseptic behaviour", "Line clearance", "Good documentation practice",
    "Material dispensing", "Deviation management", "Equipment cleaning and changeover",
    "Batch record review", "Data integrity", "Environmental monitoring", "Change control",
)  # fmt: skip
# Site SOPs (by index) that every product's batch record relies on.
PRODUCT_SITE_SOPS = (0, 1, 2, 3)

FIRST_NAMES = (
    "Ada", "Ben", "Chiara", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kira",
    "Luca", "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Huang", "Ivanova",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
    "Silva", "Tanaka", "Ulrich", "Varga", "Weber", "Yilmaz", "Zimmer",
)  # fmt: skip

DEVIATION_TITLES = {
    "EQUIPMENT": "Equipment alarm during processing",
    "HUMAN_ERROR": "Documentation error in batch record",
    "MATERIAL": "Material label discrepancy at dispensing",
    "METHOD": "Analytical method system suitability failure",
    "ENVIRONMENT": "Environmental monitoring excursion",
    "PROCESS": "Process parameter outside normal operating range",
    "UNKNOWN": "Unexpected yield variance",
}
FACILITY_DEVIATION_TITLES = (
    "HVAC pressure cascade loss in production corridor",
    "Purified water TOC alert",
    "Cleaning validation sample missed on shared equipment",
    "Temperature excursion in cold room",
)
LATE_ENTRY_REASONS = (
    "pH meter printout transcribed after shift handover",
    "MES terminal unavailable; entry made from paper log",
    "Entry corrected after supervisor review",
)
