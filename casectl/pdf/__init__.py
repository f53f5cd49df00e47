"""PDF rendering of reports (reportlab): the case overview and the case dossier.

Only `casectl report` imports this package; reportlab and the fonts load here,
never at start-up of other commands.
"""
