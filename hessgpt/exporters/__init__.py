"""Writers of other tools' formats (the reverse of :mod:`hessgpt.importers`)."""
