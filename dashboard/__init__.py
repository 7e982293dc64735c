"""Seedlab's Streamlit dashboard: reads what the engine writes, writes only requests."""
