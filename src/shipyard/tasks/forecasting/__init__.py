"""The forecasting task: series checks, candidates, rolling-origin backtests, export, serving.

statsforecast (the ``forecast`` extra) loads only when AutoETS is fitted; served models need
neither it nor a pickle (see :mod:`shipyard.tasks.forecasting.runtime`).
"""
