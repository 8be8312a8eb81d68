"""The insurance book: products and rate tables, quotes, policy and salesperson lookups for
the IVR and the admin, claim reports, and deterministic demo data."""
