"""Meter readings: DSMR P1 telegrams, OEHU readings, CSV files and synthetic households."""
