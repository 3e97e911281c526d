"""Pure NumPy signal core: oscillometry and tonometry (issue #6 builds it; empty until then)."""
