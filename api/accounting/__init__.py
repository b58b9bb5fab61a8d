"""The tenant accounting API: ledgers, vouchers, GST and reports. ``rules`` holds the domain rules,
pure functions usable without Flask or a database."""
