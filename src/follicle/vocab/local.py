"""Local (non-standard) concept ids used by Follicle, in the OMOP range reserved for local use.

OMOP reserves concept_id >= 2,000,000,000 for site-specific concepts. SALT and the AA severity
scores have no standard OMOP concept (../shared/reference/clinical.md section 2), so the synthetic
world writes them as measurements under these ids and the response module reads them back.
"""

from __future__ import annotations

SALT_TOTAL = 2_000_100_001  # SALT total score, 0-100 (Olsen 2004)
SALT_TOP = 2_000_100_002  # % terminal hair loss, top/vertex (weight 0.40)
SALT_BACK = 2_000_100_003  # % loss, posterior/back (weight 0.24)
SALT_LEFT = 2_000_100_004  # % loss, left side (weight 0.18)
SALT_RIGHT = 2_000_100_005  # % loss, right side (weight 0.18)
EYEBROW_CLINRO = 2_000_100_006  # eyebrow ClinRO 0-3 (Wyrwich 2020)
EYELASH_CLINRO = 2_000_100_007  # eyelash ClinRO 0-3 (Wyrwich 2020)
AA_IGA = 2_000_100_008  # AA-IGA category 0-4 (Wyrwich 2020)

SALT_REGIONS = {"top": SALT_TOP, "back": SALT_BACK, "left": SALT_LEFT, "right": SALT_RIGHT}

LOCAL_CONCEPTS: dict[int, str] = {
    SALT_TOTAL: "SALT total score",
    SALT_TOP: "SALT top (vertex) percent hair loss",
    SALT_BACK: "SALT back (posterior) percent hair loss",
    SALT_LEFT: "SALT left side percent hair loss",
    SALT_RIGHT: "SALT right side percent hair loss",
    EYEBROW_CLINRO: "Eyebrow ClinRO score (0-3)",
    EYELASH_CLINRO: "Eyelash ClinRO score (0-3)",
    AA_IGA: "AA-IGA category (0-4)",
}
