"""dev3000 package."""
