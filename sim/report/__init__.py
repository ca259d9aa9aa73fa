"""What a person reads: terminal tables, PNG plots and the HTML report."""
