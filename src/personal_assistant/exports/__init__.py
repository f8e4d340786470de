"""Export of a user's data and import of an export."""
