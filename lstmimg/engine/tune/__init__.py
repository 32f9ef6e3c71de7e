"""`lstmimg tune`: the study (search within a budget), what is searched, and the final runs on the test split."""
