"""What capbuild tells people about a build: the dataset card, publishing, mixtures, the report."""
