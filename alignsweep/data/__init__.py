"""Data written by us and shipped with the package (bundled sets, the tiny models' corpus), and the
one reader for every data source a user names (`rows`)."""
