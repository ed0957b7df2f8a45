// Boost.JSON compiled into the plugin (header-only use): the plugin links no Boost library.
#include <boost/json/src.hpp>
