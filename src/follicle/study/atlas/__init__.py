"""OHDSI ATLAS (Circe) cohort definitions: parsed as data, compiled to Ibis expressions run in the
database, written back as Circe JSON. See docs/atlas.md."""
