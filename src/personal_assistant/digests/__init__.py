"""Daily digests: when one is due and what it says (pure), and the sweep that writes them."""
