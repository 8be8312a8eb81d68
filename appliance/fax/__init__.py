"""Fax: insurance documents rendered to fax pages, sent with spandsp's T.30 on a call or by
calling the caller's fax back, and logged."""
