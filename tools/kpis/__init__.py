"""KPIs of the tracking plan computed in SQL, overall and per persona."""
