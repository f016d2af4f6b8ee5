"""The KPI dashboard: data assembled from tools.metrics/tools.kpis, rendered to one self-contained HTML page."""
