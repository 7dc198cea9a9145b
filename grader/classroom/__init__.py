"""Integrations for instructors: student releases, Gradescope bundles, nbgrader notebooks."""
