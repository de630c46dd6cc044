def add_gateway_paths(result, generator, request, public):
    return result
