"""What grading gives out: the report (terminal, JSON, Gradescope), the pages, the spreadsheets."""
