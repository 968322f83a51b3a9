"""The payments and portfolio services: domain model, storage, HTTP entry points."""
