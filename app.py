"""Streamlit entry point: ``python -m streamlit run app.py``. The UI lives in finmodel.ui."""

from finmodel.ui import main

main()
