"""PubMed reading, Ray Data stages and mining tasks."""
