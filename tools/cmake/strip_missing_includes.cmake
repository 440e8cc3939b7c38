# Included through CMAKE_PROJECT_INCLUDE by tools/setup_env.py when building against the ros-*
# wheels. Their exported CMake targets name the Python include directory of the machine the wheels
# were built on (e.g. /opt/python/cp311-cp311/include/python3.11), which does not exist here and
# fails CMake's generate step. At the end of configuration, drop include directories that do not
# exist from every imported target. A real ROS installation never needs this file.
function(_siam_strip_missing_includes)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    foreach(_dir IN LISTS _dirs)
      # Generator expressions are resolved later; keep them untouched.
      if(_dir MATCHES "^\\$<" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      endif()
    endforeach()
    if(NOT "${_kept}" STREQUAL "${_dirs}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _siam_strip_missing_includes)
