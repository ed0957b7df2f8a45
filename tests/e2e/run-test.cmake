# Runs one e2e test file with Node's test runner; called by ctest (see CMakeLists.txt) as
#   cmake -DNODE=<node> -DTEST_FILE=<file.test.mjs> -DE2E_DIR=<tests/e2e> -P run-test.cmake
if(NOT EXISTS "${E2E_DIR}/node_modules/@modelcontextprotocol/sdk/package.json")
  message(FATAL_ERROR
    "The e2e tests need the MCP client library, which is not installed in ${E2E_DIR}/node_modules.\n"
    "Run `npm ci --prefix tests/e2e` from the repository root, then run the tests again.")
endif()
# In a sanitizer build the servers (and the programs they run) write their reports as files in
# $PMCP_SANITIZER_REPORTS (see CMakeLists.txt): a report there fails the test, even when the
# server went on, and LeakSanitizer's report at a server's exit is seen this way too.
set(reports "$ENV{PMCP_SANITIZER_REPORTS}")
if(reports)
  file(REMOVE_RECURSE "${reports}")
  file(MAKE_DIRECTORY "${reports}")
endif()
execute_process(
  COMMAND "${NODE}" --test --test-concurrency=1 --test-reporter=spec "${TEST_FILE}"
  WORKING_DIRECTORY "${E2E_DIR}"
  RESULT_VARIABLE result)
set(report_text "")
if(reports)
  file(GLOB report_files "${reports}/*")
  foreach(report IN LISTS report_files)
    file(READ "${report}" text)
    string(APPEND report_text "\n--- ${report} ---\n${text}")
  endforeach()
endif()
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${TEST_FILE}: node --test failed (${result})${report_text}")
endif()
if(report_text)
  message(FATAL_ERROR "${TEST_FILE}: the tests passed, but a sanitizer reported:${report_text}")
endif()
