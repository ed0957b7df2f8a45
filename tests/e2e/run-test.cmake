# Runs one e2e test file with Node's test runner; called by ctest (see CMakeLists.txt) as
#   cmake -DNODE=<node> -DTEST_FILE=<file.test.mjs> -DE2E_DIR=<tests/e2e> -P run-test.cmake
if(NOT EXISTS "${E2E_DIR}/node_modules/@modelcontextprotocol/sdk/package.json")
  message(FATAL_ERROR
    "The e2e tests need the MCP client library, which is not installed in ${E2E_DIR}/node_modules.\n"
    "Run `npm ci --prefix tests/e2e` from the repository root, then run the tests again.")
endif()
execute_process(
  COMMAND "${NODE}" --test --test-concurrency=1 --test-reporter=spec "${TEST_FILE}"
  WORKING_DIRECTORY "${E2E_DIR}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${TEST_FILE}: node --test failed (${result})")
endif()
