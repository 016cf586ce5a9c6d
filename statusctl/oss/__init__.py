"""The Order Status System (OSS): a small hosted status page for carts that cannot take updates.

The stack controller posts signed updates to `POST /api/updates`; customers
look up an order by number and postal code (or follow a signed `/o/<token>`
link from an e-mail). Starlette and uvicorn come with the `statusctl[oss]`
extra; only `statusctl oss serve` imports the server modules. `links` and
`carriers` are plain Python and may be imported anywhere.
"""
