"""Per-format chunkers: each turns one file's content into pieces within the token budget."""
