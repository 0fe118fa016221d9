"""The parts of the REST API's OpenAPI document, which gateway_svc/openapi.py assembles.

`schemas` (values and answers) and `bodies` (requests) are the components; `operations`
says how an operation is written down (parameters, errors, security); one table per
module of routes adds its operations: `public`, `private`, `accounts` and `app` (streams,
health, metrics, this document). The Binance dialect's table is gateway_svc/binance/openapi.py.
"""
